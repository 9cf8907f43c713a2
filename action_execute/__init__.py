"""action_execute: a dashboard's csv_zip or a Look's CSV in, one encrypted workbook in GCS out.

`main.py` is the Cloud Function's entry point (Cloud Functions loads it from the deployed
folder's top, where staging puts a copy); the steps are modules of this package, imported by
their qualified names wherever the code runs: deployed, in the one service, in the tests.
"""
