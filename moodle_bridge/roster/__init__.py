"""What HR says: roster rows, people, and the errors of rows that cannot become people."""
