"""What a person reads: report.html, explorer.html (templates/), TensorBoard files."""
