"""Code every function uses: the Looker protocol types, the token check, settings and logging."""
