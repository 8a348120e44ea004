"""Use cases. They depend on the domain and on the ports in `ports.py`, nothing else of ours."""
