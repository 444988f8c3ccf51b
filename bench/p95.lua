-- Prints the 95th-percentile latency in milliseconds after a wrk run.
done = function(summary, latency, requests)
  io.write(string.format("P95_MS %.3f\n", latency:percentile(95) / 1000))
  io.write(string.format("ERRORS %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
