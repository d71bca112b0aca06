"""fastText's own files, read and written byte for byte: the dictionary and its hashes
(``dictionary``), the ``.bin`` model file (``model_file``) and quantized ``.ftz`` matrices
(``quantized``). Supervised models and word vectors both use them."""
