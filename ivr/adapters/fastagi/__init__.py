"""FastAGI: the server, its wire format and the survey route."""
