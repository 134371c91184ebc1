"""Small CNN/MLP family: a fast baseline with the same 256-bin action heads as the VLA families."""
