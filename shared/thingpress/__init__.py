"""thingpress shared layer: parsing, verification, import and audit logic used by every function."""
