"""Experiments: several bundles served side by side (arms), sticky assignment of users to arms,
shadow scoring, and the prediction log that the offline report joins with outcomes."""
