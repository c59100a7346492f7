"""The fault suite: defects an operator or an attacker could cause, each run against a real server."""
