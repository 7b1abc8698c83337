"""Reports rendered from results.json alone."""
