import { errorOf, KqiError, messageOf } from '../src/errors';

describe('messageOf', () => {
  it("adds the service's status", () => {
    expect(messageOf(new KqiError(409, 'The name is taken'))).toBe('The name is taken (409)');
  });
  it('has no status when none was answered', () => {
    expect(messageOf(new KqiError(0, 'cut off'))).toBe('cut off');
  });
  it('reads other errors and values', () => {
    expect(messageOf(new TypeError('bad'))).toBe('bad');
    expect(messageOf('plain')).toBe('plain');
    expect(messageOf(undefined)).toBe('undefined');
  });
});

describe('errorOf', () => {
  it("takes the JSON body's message", async () => {
    const error = await errorOf(new Response('{"message":"No such data"}', { status: 404, statusText: 'Not Found' }));
    expect(error).toBeInstanceOf(KqiError);
    expect(error.name).toBe('KqiError');
    expect(error.status).toBe(404);
    expect(error.message).toBe('No such data');
  });
  it('keeps the status line for a body without one', async () => {
    const html = await errorOf(new Response('<h1>Bad Gateway</h1>', { status: 502, statusText: 'Bad Gateway' }));
    expect(html.message).toBe('502 Bad Gateway');
    const empty = await errorOf(new Response('{"message":""}', { status: 500, statusText: 'Internal Server Error' }));
    expect(empty.message).toBe('500 Internal Server Error');
  });
});
