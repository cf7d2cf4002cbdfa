"""The releases pages: change requests (change_requests.py) and environments."""
