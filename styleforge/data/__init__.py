"""The dataset tool, data set reading and distributed sampling."""
