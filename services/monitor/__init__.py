"""The monitor process: decides balance monitors' crossings from the events, in order
(shared/monitors.py holds the rules; follower.py the loop)."""
