"""action_list: the Action Hub listing; `main.py` is the Cloud Function's entry point."""
