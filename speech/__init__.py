"""Offline speech: Russian number words, telephone audio and the Vosk recognizer."""
