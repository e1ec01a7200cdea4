"""Rendering results: the console lines and verdict, the JSON and JUnit reports."""
