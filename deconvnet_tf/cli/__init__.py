"""Console scripts: each module parses arguments, calls the library and prints."""
