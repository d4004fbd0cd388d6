"""Reference tooling shared by DinoKit's scripts: runs the official PyTorch code to make fixtures,
goldens and interop checks. Nothing here is a DinoKit implementation; it is the truth DinoKit is
checked against."""
