"""Protocol adapters: thin layers over client libraries that speak xfer's connection and error interfaces."""
