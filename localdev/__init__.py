"""Local stand-ins for GCS (with CSEK), Pub/Sub and Looker's download URLs; for tests and the local demo, never deployed."""
