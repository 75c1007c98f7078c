"""The node side: one node per host, listening, routing and running DAGs."""
