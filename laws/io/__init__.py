"""Reading and writing files: measured curves, law files, outputs written atomically."""
