// The DINOv2 module. See ../../../shared/DESIGN.md for what lives here.
