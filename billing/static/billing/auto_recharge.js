// Auto-recharge: save the card with the billing page's card form, then turn it on with it.
document.addEventListener('DOMContentLoaded', function () {
  const billing = window.imagenBilling;
  const button = document.getElementById('auto-recharge-new-card');
  if (!billing || !button) return;
  button.addEventListener('click', async function () {
    const form = button.form;
    billing.setBusy(true);
    button.disabled = true;
    billing.show('Saving your card…', '', button);
    try {
      const setupIntent = await billing.saveCard();
      const result = await billing.post(form.action, {
        pack: form.elements.pack.value,
        threshold: form.elements.threshold.value,
        setup_intent: setupIntent,
      });
      billing.show(result.message, 'success', button);
      setTimeout(function () { window.location.reload(); }, 2500);
    } catch (error) {
      billing.show(error.message, 'error', button);
      billing.setBusy(false);
      button.disabled = false;
    }
  });
});
