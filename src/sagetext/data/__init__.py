"""Data formats, independent of any algorithm: RecordIO-protobuf, text corpora, vocabularies."""
