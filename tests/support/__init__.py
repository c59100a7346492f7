"""What the tests share that is not a fixture: fakes, corpora, servers, clusters, browsers, waiting."""
