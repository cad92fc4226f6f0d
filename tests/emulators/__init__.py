"""Local emulators of providers' APIs for the tests: nothing in the suite reaches a provider."""
