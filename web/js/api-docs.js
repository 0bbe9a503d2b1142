// api-docs.js — renders /api/openapi.json as a readable list of endpoints (the page
// /api-docs.html). Text only ever goes in with textContent.

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {any} schema @param {any} spec */
function resolve(schema, spec) {
  const ref = schema?.$ref;
  if (typeof ref !== 'string') return schema;
  return spec.components?.schemas?.[ref.split('/').pop() ?? ''] ?? schema;
}

/** @param {string} method @param {string} path @param {any} operation @param {any} spec */
function renderEndpoint(method, path, operation, spec) {
  const card = element('section', 'endpoint');
  card.setAttribute('role', 'listitem');
  const title = element('h2');
  title.append(element('span', `method ${method}`, method.toUpperCase()), element('span', undefined, path));
  card.append(title, element('p', undefined, operation.summary ?? ''));
  const params = (operation.parameters ?? []).map((/** @type {any} */ p) => `${p.name} (${p.in})`);
  if (params.length) card.append(element('p', 'meta', `Parameters: ${params.join(', ')}`));
  if (operation.security) card.append(element('p', 'meta', 'Needs a bearer token or the session cookie.'));
  const body = operation.requestBody?.content?.['application/json']?.schema;
  if (body) {
    card.append(element('p', 'meta', 'Request body:'), element('pre', undefined, JSON.stringify(resolve(body, spec), null, 2)));
  }
  const success = Object.entries(operation.responses ?? {}).find(([status]) => status.startsWith('2'));
  if (success) {
    const [status, response] = success;
    const schema = /** @type {any} */ (response).content?.['application/json']?.schema;
    card.append(element('p', 'meta', `Success: ${status}`));
    if (schema) card.append(element('pre', undefined, JSON.stringify(resolve(schema, spec), null, 2)));
  }
  return card;
}

async function main() {
  const list = document.getElementById('endpoints');
  if (!list) return;
  const response = await fetch('/api/openapi.json');
  const spec = await response.json();
  for (const [path, item] of Object.entries(spec.paths ?? {})) {
    for (const [method, operation] of Object.entries(/** @type {Record<string, any>} */ (item))) {
      list.append(renderEndpoint(method, path, operation, spec));
    }
  }
}

void main();
