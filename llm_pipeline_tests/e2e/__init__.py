"""End-to-end tests: dagster-webserver, dagster-daemon and a headless Chromium, as users meet them."""
