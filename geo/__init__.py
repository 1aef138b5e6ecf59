"""Spatial logic and analytics: functions over the database, in metres."""
