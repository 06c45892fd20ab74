"""The study's experiments (the article's four and the style-versus-digit one), one module each;
`common` holds what they share."""
