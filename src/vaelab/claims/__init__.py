"""The article's eight claims: the statistics over seeds, the rules, the verdicts."""
