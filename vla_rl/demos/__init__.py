"""Demonstrations: scripted controllers that solve simulator tasks from privileged state, the
on-disk demo format (`format.py`), and generation through the vectorised env (`generate.py`)."""
