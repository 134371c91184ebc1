"""Evaluation: episodes under a fixed protocol, success statistics, reports."""
