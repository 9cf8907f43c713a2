"""The regions Cloud Run functions (2nd gen) run in, for checking --region before anything runs.

Written down on 2026-12-07 from Google's "Cloud Functions locations" page
(cloud.google.com/functions/docs/locations, its Tier 1 and Tier 2 tables with the "2nd gen"
column) and Firebase's "Cloud Functions locations" page (firebase.google.com/docs/functions/
locations). UNCONFIRMED are regions Cloud Run lists that those pages' tables, as read, did not
show in full; they are accepted too. Google adds regions: `gcloud functions regions list` gives
today's, and --any-region deploys to one not written here.
"""

from __future__ import annotations

import difflib

CONFIRMED = frozenset({
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2",
    "asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
    "australia-southeast1", "australia-southeast2", "europe-central2", "europe-north1",
    "europe-southwest1", "europe-west1", "europe-west2", "europe-west3", "europe-west4",
    "europe-west6", "europe-west8", "europe-west9", "me-west1", "northamerica-northeast1",
    "southamerica-east1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
    "us-west1", "us-west2", "us-west3", "us-west4",
})  # fmt: skip
UNCONFIRMED = frozenset({
    "europe-north2", "europe-west10", "europe-west12", "me-central1", "me-central2",
    "northamerica-northeast2", "northamerica-south1", "southamerica-west1",
})  # fmt: skip
REGIONS = CONFIRMED | UNCONFIRMED


def problem(region: str) -> str | None:
    """Why `region` is not one Cloud Run functions lists, naming the closest; None when it is."""
    if region in REGIONS:
        return None
    close = difflib.get_close_matches(region, sorted(REGIONS), n=1, cutoff=0.5)
    hint = f"; the closest is {close[0]}" if close else ""
    return (
        f"--region '{region}' is not a region Cloud Run functions run in{hint} (the list in "
        "deploy/regions.py; if Google has added it since, `gcloud functions regions list` shows "
        "it, and --any-region deploys there)"
    )
