// The Formats module. See ../../../shared/DESIGN.md for what lives here.
