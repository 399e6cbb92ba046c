"""flagsvc's Python SDK: the evaluation engine the server and every Python service share."""
