"""Placement: which component runs where, and the workers that carry a plan out."""
