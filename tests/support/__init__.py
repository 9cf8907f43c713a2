"""What the tests share, one module a job:

- `handlers`   the real handlers' apps as functions-framework builds them; Looker's headers,
               sample payloads and answer shapes
- `emulators`  pytest fixtures: fake-gcs-server, the CSEK proxy, the Pub/Sub emulator, a bucket
- `world`      one isolated deployment on the emulators (`world`), both shapes, and its checks
- `catalogue`  what each hostile-input or fault case checks: the answer, the log line, the state
- `deploy`     deploy.sh and setup-project.sh run against a stand-in gcloud, read back
- `gunicorn`   the one service under gunicorn on a real socket
"""
