"""``o2v launch``: start attempt 1 of a lineage on a deployed stack."""
