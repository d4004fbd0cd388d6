// The Evaluation module: linear probe, k-NN, dataset readers. See DESIGN.md.
