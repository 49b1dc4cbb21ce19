"""The autograder for the neural-networks assignment."""
VERSION = "1.0.0"
