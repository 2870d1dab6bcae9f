// The billing page: the card is collected by Stripe.js (real Stripe or localstripe's fake,
// whichever STRIPE_JS_URL serves) and saved with a SetupIntent; the server then charges it.
// Credits arrive only when Stripe's signed event reaches the server.
(function () {
  const config = document.getElementById('billing-config').dataset;
  const message = document.getElementById('payment-message');
  const stripe = Stripe(config.publishableKey);
  const card = stripe.elements().create('card');
  card.mount('#card-element');

  function show(text, kind) {
    message.textContent = text;
    message.className = 'message ' + (kind || '');
    message.hidden = false;
  }

  function setBusy(busy) {
    document.querySelectorAll('button.buy-pack, button.subscribe').forEach(function (b) {
      b.disabled = busy;
    });
  }

  async function post(url, fields) {
    const body = new FormData();
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    const response = await fetch(url, {
      method: 'POST',
      body: body,
      headers: {'X-CSRFToken': config.csrfToken, 'Accept': 'application/json'},
      credentials: 'same-origin',
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      throw new Error(data.message || 'The request failed (' + response.status + ').');
    }
    return data;
  }

  async function saveCard() {
    const setup = await post(config.cardSetupUrl, {});
    const result = await stripe.confirmCardSetup(setup.client_secret, {payment_method: {card: card}});
    if (result.error) {
      throw new Error(result.error.message || 'Your card could not be saved.');
    }
    return result.setupIntent.id;
  }

  document.querySelectorAll('button.buy-pack').forEach(function (button) {
    button.addEventListener('click', async function () {
      setBusy(true);
      show('Processing your payment…');
      try {
        const setupIntent = await saveCard();
        const result = await post(button.dataset.url, {token: button.dataset.token, setup_intent: setupIntent});
        if (result.status === 'requires_action') {
          const auth = await stripe.confirmCardPayment(result.client_secret);
          if (auth.error) { throw new Error(auth.error.message || 'Authentication failed.'); }
        } else if (result.status === 'failed') {
          throw new Error(result.message || 'The payment failed.');
        }
        show('Payment received. Your credits appear as soon as Stripe confirms it.', 'success');
        setTimeout(function () { window.location.reload(); }, 2500);
      } catch (error) {
        show(error.message, 'error');
        setBusy(false);
      }
    });
  });

  document.querySelectorAll('button.subscribe').forEach(function (button) {
    button.addEventListener('click', async function () {
      setBusy(true);
      show('Starting your subscription…');
      try {
        const setupIntent = await saveCard();
        const result = await post(config.changePlanUrl, {plan: button.dataset.plan, setup_intent: setupIntent});
        show(result.message, 'success');
        setTimeout(function () { window.location.reload(); }, 2500);
      } catch (error) {
        show(error.message, 'error');
        setBusy(false);
      }
    });
  });
})();
