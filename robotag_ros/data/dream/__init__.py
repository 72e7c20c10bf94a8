"""DREAM-format data: the file format, the torch Dataset, the writer, contact sheets."""
