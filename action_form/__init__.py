"""action_form: the form a Looker user fills in; `main.py` is the Cloud Function's entry point."""
