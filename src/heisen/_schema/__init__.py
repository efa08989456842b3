"""The pipeline schema, split by what it describes."""
