// Placeholder: shows the appliance's health until the dashboard views land.
const el = document.getElementById('health');
fetch('/api/health')
  .then((r) => r.json())
  .then((h) => { el.textContent = h.ok ? 'Healthy' : `Degraded: ${h.down.join(', ')} down`; })
  .catch(() => { el.textContent = 'Health check failed'; });
