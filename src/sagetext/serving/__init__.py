"""The inference server shared by every algorithm: Flask app, codecs, gunicorn runner."""
