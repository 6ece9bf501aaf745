"""What people write instead of this project's call stack, each as a competent engineer would in
about fifty lines (scenario 6). Each `run(base_url, requests)` returns how many documents got an
answer; the scenario times them and reads the simulator's counters.
"""
