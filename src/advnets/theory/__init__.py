"""Section 4 of the paper checked numerically on a 1-D problem: densities on a grid (densities.py), the experiment
that trains the `toy1d` preset with the library's Trainer (experiment.py), and Figure 1 (figure1.py)."""
